//! Discovery document rendering and parsing: what every lyncdiscover and Autodiscover answer costs.

use criterion::{Criterion, criterion_group, criterion_main};
use lyncd_discover::{
    AccessLocation, Document, Representation, RootAnswer, Served, ServiceUrls, SipEndpoint,
    root_answer, user_answer,
};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let urls = ServiceUrls::new("https://lyncweb.contoso.com", "https://login.contoso.com");
    let pool = SipEndpoint {
        fqdn: "lyncfe.contoso.com".into(),
        port: 5061,
    };
    c.bench_function("discover/root_xml_render", |b| {
        b.iter(|| {
            let RootAnswer::Document(d) = root_answer(
                &urls,
                black_box("contoso.com"),
                Served::Here,
                false,
                Representation::Xml,
            ) else {
                unreachable!()
            };
            d.to_xml()
        })
    });
    c.bench_function("discover/root_json_render", |b| {
        b.iter(|| {
            let RootAnswer::Document(d) = root_answer(
                &urls,
                black_box("contoso.com"),
                Served::Here,
                false,
                Representation::Json,
            ) else {
                unreachable!()
            };
            d.to_json()
        })
    });
    c.bench_function("discover/user_xml_render", |b| {
        b.iter(|| {
            user_answer(
                &urls,
                &pool,
                &pool,
                Some(AccessLocation::External),
                Representation::Xml,
            )
            .to_xml()
        })
    });
    let xml = user_answer(
        &urls,
        &pool,
        &pool,
        Some(AccessLocation::External),
        Representation::Xml,
    )
    .to_xml();
    c.bench_function("discover/user_xml_parse", |b| {
        b.iter(|| Document::from_xml(black_box(&xml)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
