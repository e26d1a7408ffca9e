//! Fuzz target `reference_app`: see [`cable_fuzz::reference_app`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::reference_app::run);
