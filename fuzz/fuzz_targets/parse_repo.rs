//! Parsing and resolving feature_store.yaml must never panic: any text yields a repo or findings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    thread_local! {
        static DIR: tempfile_free::Dir = tempfile_free::Dir::new();
    }
    DIR.with(|dir| {
        std::fs::write(dir.path().join("feature_store.yaml"), text).unwrap();
        let _ = fsctl::repo::Repo::load_findings(dir.path());
    });
});

/// A scratch directory per fuzzing thread, without extra dependencies.
mod tempfile_free {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("fsctl-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
}
