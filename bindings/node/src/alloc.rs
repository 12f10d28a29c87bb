//! The addon's global allocator: glibc's malloc, or mimalloc with the `mimalloc` feature
//! (`npm run build:native -- --features mimalloc`), kept to be measured against it. Under the soak case
//! (1,000 slow readers, `npm run bench -- --only soak`) mimalloc did not lower the peak RSS (1,015 vs
//! 973 MiB, Node net 318) and kept 707 MiB after the load instead of 912, far from the goal of 64
//! (benches/results/s19-soak-mimalloc.md): what the engine holds under that load, not the allocator,
//! is the first thing to cut. Only the addon's Rust memory goes through it; Node's own allocations and
//! V8's heap are untouched.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
