//! cable-server (under construction in this session).
