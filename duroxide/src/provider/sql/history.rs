//! Decoding a stored history: rows `(event_id, data)` into events. Reading the rows is
//! each store's business.

use crate::history::Event;

/// The events of one execution's history rows `(event_id, data)`, in order, and the last
/// event id (a position from the ids, never a row count: with a row missing, the count
/// would point at an id that is taken); no events and why when a row is unreadable.
pub(crate) fn parse_history(
    rows: Vec<(i64, String)>,
    execution_id: u64,
) -> (Vec<Event>, Option<String>, u64) {
    let len = rows.last().map_or(0, |(id, _)| *id as u64);
    let mut events = Vec::with_capacity(rows.len());
    for (id, data) in rows {
        match serde_json::from_str::<Event>(&data) {
            Ok(e) => events.push(e),
            Err(e) => return (Vec::new(), Some(format!("event {id} of execution {execution_id}: {e}")), len),
        }
    }
    (events, None, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_row_empties_the_history_and_says_where() {
        let (events, why, len) = parse_history(vec![(1, "{".into()), (4, "{".into())], 2);
        assert!(events.is_empty());
        assert!(why.unwrap().starts_with("event 1 of execution 2: "));
        // The last id, not the row count.
        assert_eq!(len, 4);
        assert_eq!(parse_history(Vec::new(), 1), (Vec::new(), None, 0));
    }
}
