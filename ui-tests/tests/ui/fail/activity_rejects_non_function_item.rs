use duroxide::prelude::*;

#[activity]
struct NotAFunction;

fn main() {}
