//! Fuzz target `hub`: see [`cable_fuzz::hub`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::hub::run);
