//! The `dagger.io` and `universe.dagger.io` CUE packages, embedded in the binary.
//!
//! Depends on nothing. The package sources live under `universe/pkg/`.
