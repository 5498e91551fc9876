//! Export and import benchmarks of a `type=local` cache.
fn main() {
    divan::main();
}
