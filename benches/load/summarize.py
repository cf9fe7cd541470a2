"""Prints a table of wrk results: one row per <name>.txt in the given directory."""
import pathlib
import re
import sys


def millis(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


print("| run | req/s | p50 ms | p99 ms | requests | non-2xx |")
print("|---|---:|---:|---:|---:|---:|")
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.txt")):
    text = path.read_text()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
    p50 = millis(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = millis(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    total = re.search(r"(\d+) requests in", text).group(1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    print(f"| {path.stem} | {float(rps):,.0f} | {p50:.2f} | {p99:.2f} | {total} | "
          f"{bad.group(1) if bad else 0} |")
