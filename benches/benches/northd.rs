//! northd's compiler at scale: a full NB -> SB compile of one switch with many ports.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use switchyard_benches::switch_nb;
use switchyard_northd::compile::compile;

fn compile_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("northd_compile");
    g.sample_size(10);
    for ports in [100usize, 10_000] {
        let nb = switch_nb(ports);
        g.bench_function(format!("{ports}_ports"), |b| {
            b.iter(|| black_box(compile(&nb)))
        });
    }
    g.finish();
}

criterion_group!(benches, compile_bench);
criterion_main!(benches);
