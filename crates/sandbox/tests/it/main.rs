//! Integration tests: the real `spor-sandbox` binary, over real HTTP.

mod cli;
mod mcp;
mod rest;
mod sleep;
mod support;
