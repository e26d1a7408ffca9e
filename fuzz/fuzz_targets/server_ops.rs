//! Fuzz target `server_ops`: see [`cable_fuzz::server_ops`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::server_ops::run);
