//! CPU cost of one `ec2:DescribeVolumes` round trip without the network: validate and
//! serialize the request, sign it, parse a response of N volumes; and the first-use load of
//! the ec2 model. Driven by `engine/aws/scripts/bench-describe-volumes.py`, which runs
//! botocore on the same response in the same minute.
//!
//! Usage: bench_describe_volumes RESPONSE.xml ITERATIONS; prints one JSON object.

use std::time::Duration;

use orgop_aws::{Credentials, ModelRegistry, endpoints};
use serde_json::json;

/// CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`).
fn cpu() -> Duration {
    cpu_time::ThreadTime::now().as_duration()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let xml = std::fs::read(&args[1]).expect("the response file");
    let iterations: u32 = args[2].parse().expect("an iteration count");

    let t = cpu();
    let registry = ModelRegistry::bundled_only();
    let ec2 = registry.service("ec2").expect("ec2 loads");
    let model_load = cpu() - t;

    let op = ec2.operation("DescribeVolumes").unwrap();
    let params =
        json!({"Filters": [{"Name": "status", "Values": ["available"]}], "MaxResults": 1000});
    let endpoint = endpoints::resolve(
        ec2.model.metadata(),
        "us-east-1",
        &endpoints::EndpointOverrides::default(),
    )
    .unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", None, None, "bench");
    let response = orgop_awswire::HttpResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "text/xml;charset=UTF-8".into())],
        body: xml,
    };

    // Each phase in its own loop: the scheduler's CPU clock is too coarse to time one
    // microsecond-scale step at a time. The cheap phases run 20x as often.
    let cheap = iterations * 20;
    let t0 = cpu();
    for _ in 0..cheap {
        orgop_awswire::validate(&ec2.model, op, &params).unwrap();
        std::hint::black_box(orgop_awswire::serialize(&ec2.model, op, &params).unwrap());
    }
    let ser = (cpu() - t0) / 20;
    let req = orgop_awswire::serialize(&ec2.model, op, &params).unwrap();
    let t0 = cpu();
    for _ in 0..cheap {
        let signed = orgop_aws::sign_request("ec2", &endpoint, &req, &params, &creds).unwrap();
        std::hint::black_box(&signed);
    }
    let sign = (cpu() - t0) / 20;
    let mut volumes = 0;
    let t0 = cpu();
    for _ in 0..iterations {
        let out = orgop_awswire::parse(&ec2.model, op, &response).unwrap();
        volumes = out["Volumes"].as_array().map_or(0, Vec::len);
    }
    let parse = cpu() - t0;
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(iterations);
    println!(
        "{}",
        json!({
            "implementation": "orgop",
            "volumes": volumes,
            "iterations": iterations,
            "model_load_ms": model_load.as_secs_f64() * 1000.0,
            "serialize_ms": per(ser),
            "sign_ms": per(sign),
            "parse_ms": per(parse),
            "total_ms": per(ser + sign + parse),
        })
    );
}
