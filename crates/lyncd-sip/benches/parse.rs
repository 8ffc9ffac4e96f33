//! Parse, stream-decode and signature-buffer cost for the capture-01 REGISTER
//! that carries a TLS-DSK Authorization with gssapi-data (~1 KB, 14 headers).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lyncd_sip::sign::{SigParams, buffer};
use lyncd_sip::{Decoder, Frame, Limits, Message};

const REGISTER: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/interop/captures/01-autodiscover-full-flow/",
    "018-sip-tls-lyncfe.contoso.com-REGISTER-sip_contoso.com.req.txt"
));

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Bytes(REGISTER.len() as u64));
    let bytes = Bytes::from_static(REGISTER);

    g.bench_function("parse_register_018", |b| {
        b.iter(|| Message::parse(black_box(bytes.clone())))
    });

    g.bench_function("decode_register_018", |b| {
        let mut dec = Decoder::new(Limits::default());
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(REGISTER));
            match dec.decode(&mut buf) {
                Ok(Some(Frame::Message(m))) => m,
                other => panic!("bench input must decode: {other:?}"),
            }
        })
    });

    let msg = Message::parse(bytes.clone()).expect("capture parses");
    let params = SigParams {
        scheme: "TLS-DSK",
        rand: "1a2b3c4d",
        num: "1",
        realm: "SIP Communications Service",
        targetname: "lyncfe.contoso.com",
        version: 4,
    };
    g.bench_function("sign_buffer_register_018", |b| {
        b.iter(|| buffer(black_box(&msg), black_box(&params)))
    });
    g.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
