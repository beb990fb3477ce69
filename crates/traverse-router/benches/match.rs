//! `RouteTable::find` cost versus table size: with host indexing it should
//! stay flat from 10 to 10 000 routes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::HeaderMap;
use traverse_router::{Request, Route, RouteTable, Rule};

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn route(text: &str, value: usize) -> Route<usize> {
    let rule = match Rule::parse(text) {
        Ok(rule) => rule,
        Err(e) => panic!("{text}: {e}"),
    };
    Route {
        priority: rule.default_priority(),
        rule,
        entrypoints: Vec::new(),
        value,
    }
}

/// `n` host routes plus a few host-less catch-all routes.
fn table(n: usize) -> RouteTable<usize> {
    let mut routes: Vec<_> = (0..n)
        .map(|i| {
            route(
                &format!("Host(`svc{i}.example.com`) && PathPrefix(`/api`)"),
                i,
            )
        })
        .collect();
    for (i, prefix) in ["/health", "/metrics", "/static"].iter().enumerate() {
        routes.push(route(&format!("PathPrefix(`{prefix}`)"), n + i));
    }
    RouteTable::new(routes)
}

fn bench_find(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("find");
    for n in SIZES {
        let table = table(n);
        let last_host = format!("svc{}.example.com", n - 1);
        let hit = Request {
            method: "GET",
            host: &last_host,
            path: "/api/users",
            query: None,
            headers: &headers,
            client_ip: None,
        };
        assert_eq!(table.find("web", &hit), Some(&(n - 1)));
        group.bench_with_input(BenchmarkId::new("hit_last_host", n), &hit, |b, req| {
            b.iter(|| table.find(black_box("web"), black_box(req)))
        });

        let miss = Request {
            host: "unknown.example.org",
            ..hit
        };
        assert_eq!(table.find("web", &miss), None);
        group.bench_with_input(BenchmarkId::new("miss", n), &miss, |b, req| {
            b.iter(|| table.find(black_box("web"), black_box(req)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_find);
criterion_main!(benches);
