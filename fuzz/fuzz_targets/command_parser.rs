//! Fuzz target `command_parser`: see [`cable_fuzz::command_parser`].
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_fuzz::command_parser::run);
