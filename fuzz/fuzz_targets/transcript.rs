//! Fuzz target `transcript`: see [`cable_fuzz::transcript`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::transcript::run);
