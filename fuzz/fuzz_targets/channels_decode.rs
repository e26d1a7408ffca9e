//! Fuzz target `channels_decode`: every decoder of cable-channels, with the
//! decode-encode-decode round trip (`cable_channels::fuzz_decode_all`).
#![cfg_attr(fuzzing, no_main)]
cable_fuzz::fuzz_target!(cable_channels::fuzz_decode_all);
