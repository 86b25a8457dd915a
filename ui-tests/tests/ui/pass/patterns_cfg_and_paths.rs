// Accepted forms beyond the basics: destructuring patterns as the input, `mut` bindings, a
// context named `_`, `#[cfg]` applied to everything generated, fully qualified context and
// result paths, and a handle used from another module.
use duroxide::OrchestrationDefinition;
use duroxide::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct Pair {
    pub left: u32,
    pub right: u32,
}

#[activity]
async fn add(_: ActivityContext, Pair { left, right }: Pair) -> Result<u32, ActivityError> {
    Ok(left + right)
}

#[activity]
async fn count_up(_ctx: ActivityContext, mut n: u32) -> ::core::result::Result<u32, ActivityError> {
    n += 1;
    Ok(n)
}

#[cfg(any())]
#[activity]
async fn compiled_out(_ctx: ActivityContext, _input: ()) -> Result<(), ActivityError> {
    this_would_not_compile()
}

pub mod workflows {
    use duroxide::{OrchestrationError, orchestration};

    #[orchestration(name = "Sum")]
    pub async fn sum(
        ctx: ::duroxide::OrchestrationContext,
        (left, right): (u32, u32),
    ) -> std::result::Result<u32, OrchestrationError> {
        let total = ctx.call(super::add, super::Pair { left, right }).await?;
        Ok(ctx.call(super::count_up, total).await?)
    }
}

fn main() {
    let _ = OrchestrationRegistry::builder().register_typed(workflows::sum).build();
    let _ = ActivityRegistry::builder().register_typed(add).register_typed(count_up).build();
    assert_eq!(<workflows::sum as OrchestrationDefinition>::NAME, "Sum");
}
