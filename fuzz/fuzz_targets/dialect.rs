//! Fuzz target `dialect`: see [`cable_fuzz::dialect`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::dialect::run);
