//! Reading features in a Rust service with the library's `FeatureClient`: one entity, a batch
//! with training defaults for the missing ones, and the freshness of each view.
//!
//!   make demo   # or any materialized repo
//!   cargo run --example serve -- redis://127.0.0.1:6379/0 banking realtime_scoring 1000042 1000043
//!
//! Prints each entity's values in service order and its stale views.

use std::time::Duration;

use fsctl::client::{Entity, FeatureClient, Missing, ReadOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, project, service, ids @ ..] = args.as_slice() else {
        eprintln!("usage: serve URL PROJECT SERVICE ENTITY...");
        std::process::exit(2);
    };
    if let Err(e) = serve(url, project, service, ids) {
        eprintln!("serve: {e}");
        std::process::exit(1);
    }
}

fn serve(url: &str, project: &str, service: &str, ids: &[String]) -> Result<(), fsctl::Error> {
    let client = FeatureClient::builder(url, project)
        // A request-sized cache of the hottest entities, dropped when `current` moves.
        .cache(10_000, Duration::from_secs(1))
        .build()?;
    let entities: Vec<Entity> = ids.iter().map(|id| Entity::from(id.as_str())).collect();
    let options = ReadOptions {
        missing: Missing::Defaults,
        ..ReadOptions::default()
    };
    for v in client.get_many(service, &entities, &options)? {
        println!(
            "{} (snapshot {}, found {})",
            v.entity(),
            v.snapshot,
            v.found
        );
        for (name, _dtype, value) in v.features() {
            println!("  {name} = {value}");
        }
        for view in v.views() {
            let age = view
                .age
                .map_or("no row".to_owned(), |a| format!("{}s", a.as_secs()));
            println!(
                "  view {}: age {age}{}",
                view.view,
                if view.stale { " (stale)" } else { "" }
            );
        }
    }
    Ok(())
}
