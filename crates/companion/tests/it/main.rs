//! Core integration tests: the real server on `127.0.0.1:0` with a temp
//! database, an in-memory secret store, a fake clock and a fake upstream,
//! driven over real HTTP. One binary (see STYLE.md "Tests"); one module per
//! surface.

mod access;
mod accounts;
mod architecture;
mod attacks;
mod authorize;
mod bridge;
mod cimd;
mod connect;
mod consent;
mod control;
mod desktop;
mod eras;
mod faults;
mod gateway;
mod guard;
mod hosted;
mod limits;
mod mcp;
mod metadata;
mod refresh;
mod register;
mod requester;
mod revoke;
mod support;
mod token;
