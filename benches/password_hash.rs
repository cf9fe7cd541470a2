//! The cost of one argon2id verification: the ceiling on login throughput is
//! `cores / this`. Measured with hookauth's defaults (OWASP) and with fastapi-fullauth's
//! parameters (argon2-cffi defaults), which the load comparison uses.

use criterion::{Criterion, criterion_group, criterion_main};
use hookauth::crypto::{PasswordHasher, Verification};
use hookauth::domain::Password;

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id_verify");
    group.sample_size(10);
    for (name, m, t, p) in [
        ("owasp_m19456_t2_p1", 19_456, 2, 1),
        ("peer_m65536_t3_p4", 65_536, 3, 4),
    ] {
        let hasher = PasswordHasher::new(m, t, p).unwrap();
        let password = Password::new("load-test-secret-123".into());
        let hash = hasher.hash(&password);
        group.bench_function(name, |b| {
            b.iter(|| {
                assert_eq!(
                    hasher.verify(&password, &hash),
                    Verification::Match { outdated: false }
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
