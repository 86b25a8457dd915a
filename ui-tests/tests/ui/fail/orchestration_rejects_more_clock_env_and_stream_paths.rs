use duroxide::prelude::*;

// Stand-ins with the real paths' shapes, so only the guard's errors show.
mod time {
    pub struct OffsetDateTime;
    impl OffsetDateTime {
        pub fn now_utc() -> u64 {
            0
        }
        pub fn now_local() -> u64 {
            0
        }
    }
}

#[orchestration]
async fn o(_ctx: OrchestrationContext, _input: ()) -> Result<u64, OrchestrationError> {
    let _utc = time::OffsetDateTime::now_utc();
    let _local = time::OffsetDateTime::now_local();
    let _elapsed = std::time::Instant::elapsed;
    let _args: Vec<_> = std::env::args_os().collect();
    let _dir = std::env::current_dir();
    let _err = std::io::stderr();
    Ok(0)
}

fn main() {}
