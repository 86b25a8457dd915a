//! How figures are printed: a human line and a `JSON {...}` line per workload, and one
//! `target_ratio` line per performance target (figure / target, and whether it is met).

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn report(workload: &str, store: &str, figures: &[(&str, f64)]) {
    let human: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v:.2}")).collect();
    println!("{workload:<11} {store:<7} {}", human.join("  "));
    let json: Vec<String> = figures.iter().map(|(k, v)| format!("\"{k}\":{v:.4}")).collect();
    println!("JSON {{\"workload\":\"{workload}\",\"store\":\"{store}\",{}}}", json.join(","));
}

/// Which side of its target a figure must stay on.
#[derive(Clone, Copy)]
pub enum Goal {
    AtLeast,
    AtMost,
}

/// Prints the figure against its target: `ratio` is figure / target, so 1.0 is the target
/// itself; an at-least target is met at a ratio of 1 or more, an at-most one at 1 or less.
pub fn target_ratio(workload: &str, store: &str, figure_name: &str, figure: f64, goal: Goal, target: f64) {
    let ratio = figure / target;
    let (sign, met) = match goal {
        Goal::AtLeast => (">=", ratio >= 1.0),
        Goal::AtMost => ("<=", ratio <= 1.0),
    };
    let met = if met { "yes" } else { "no" };
    println!(
        "target_ratio {workload} {store} {figure_name}={figure:.3} target{sign}{target} ratio={ratio:.3} met={met}"
    );
    println!(
        "JSON {{\"target_ratio\":\"{workload}\",\"store\":\"{store}\",\"figure\":\"{figure_name}\",\
         \"value\":{figure:.4},\"goal\":\"{sign}\",\"target\":{target},\"ratio\":{ratio:.4},\"met\":\"{met}\"}}"
    );
}
