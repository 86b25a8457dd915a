use duroxide::prelude::*;

#[activity]
async fn a<T: Default>(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    let _ = T::default();
    Ok(input)
}

fn main() {}
