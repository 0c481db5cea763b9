//! The one retry policy of fsctl: bounded exponential backoff with jitter, used by the data
//! writes and the commit alike (SPEC §5). Whether a failure is worth retrying is the caller's
//! call; how long to wait and how often to try is decided here.

use std::time::Duration;

/// How often to try and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles with each further failure...
    pub base: Duration,
    /// ...up to this.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 8 tries, 50 ms doubling to at most 5 s: rides out a restart or a failover of several
    /// seconds, and gives up on a dead server within half a minute.
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            base: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1` after `attempt` failures (1-based): uniformly within
    /// the upper half of `min(max, base × 2^(attempt-1))`, so that the connections of a run
    /// that failed together do not come back together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = exp.min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(jitter_unit())
    }

    /// True when `attempt` failures leave tries to make.
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.attempts.max(1)
    }

    /// Runs `op` until it succeeds, fails with an error `retryable` rejects, or the tries run
    /// out; `between` runs before each retry (to reconnect, say) with the failure count.
    pub fn run<T, E>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        retryable: impl Fn(&E) -> bool,
        mut between: impl FnMut(u32, &E),
    ) -> Result<T, (E, u32)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if retryable(&e) && self.should_retry(attempt) => {
                    std::thread::sleep(self.delay(attempt));
                    between(attempt, &e);
                }
                Err(e) => return Err((e, attempt)),
            }
        }
    }
}

/// A number in [0, 1) that differs between threads and calls; quality is irrelevant here.
fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_stop_at_the_cap() {
        let p = RetryPolicy {
            attempts: 8,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for (attempt, ceiling) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let d = p.delay(attempt).as_millis() as u64;
            assert!(
                (ceiling / 2..=ceiling).contains(&d),
                "attempt {attempt}: {d} ms"
            );
        }
    }

    #[test]
    fn run_stops_at_the_attempt_limit_and_on_a_fatal_error() {
        let p = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<(), _> = p.run(
            || {
                calls += 1;
                Err("transient")
            },
            |_| true,
            |_, _| {},
        );
        assert_eq!((r, calls), (Err(("transient", 3)), 3));
        let mut calls = 0;
        let r: Result<(), _> = p.run(
            || {
                calls += 1;
                Err("fatal")
            },
            |e| *e != "fatal",
            |_, _| {},
        );
        assert_eq!((r, calls), (Err(("fatal", 1)), 1));
        let mut calls = 0;
        let r = p.run(
            || {
                calls += 1;
                if calls < 2 {
                    Err("transient")
                } else {
                    Ok(calls)
                }
            },
            |_| true,
            |_, _| {},
        );
        assert_eq!(r, Ok(2));
    }
}
