//! Integration tests: the real `spor-sandbox` binary, over real HTTP.

mod cli;
mod rest;
mod support;
