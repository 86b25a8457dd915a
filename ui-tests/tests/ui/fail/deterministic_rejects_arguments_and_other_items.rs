use duroxide::prelude::*;

#[deterministic(strict)]
fn helper() {}

#[deterministic]
struct NotAFunction;

fn main() {}
