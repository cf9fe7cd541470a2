-- POST /login with a fixed body. Env: BENCH_EMAIL, BENCH_PASSWORD, API_PREFIX.
wrk.method = "POST"
wrk.path = (os.getenv("API_PREFIX") or "/api/v1/auth") .. "/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"email":"%s","password":"%s"}',
  os.getenv("BENCH_EMAIL"), os.getenv("BENCH_PASSWORD"))
