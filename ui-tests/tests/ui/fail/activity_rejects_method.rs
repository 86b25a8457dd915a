use duroxide::prelude::*;

struct Service;

impl Service {
    #[activity]
    async fn a(&self, input: u64) -> Result<u64, ActivityError> {
        Ok(input)
    }
}

fn main() {}
