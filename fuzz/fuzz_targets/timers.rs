//! Fuzz target `timers`: see [`cable_fuzz::timers`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::timers::run);
