//! Fuzz target `consumer`: see [`cable_fuzz::consumer`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::consumer::run);
