//! `aws-role-sdk-s3 ENDPOINT BUCKET`: an ordinary aws-sdk-rust S3 program in a job, for the
//! tool table (tests/e2e/tools.sh). It configures nothing but the endpoint (the S3
//! emulator, path-style) and the HTTP client, lets the SDK's default chain find the job's
//! credentials, then lists BUCKET, reads `in.csv` and writes `out.csv`, printing the
//! markers the table reads (`LIST: key`, `READ: text`, `WROTE`); exits 1 on a failed call.

use aws_sdk_s3::primitives::ByteStream;

fn fail(what: &str, e: impl std::error::Error) -> ! {
    eprintln!(
        "{what} failed: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    );
    std::process::exit(1);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(endpoint), Some(bucket)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: aws-role-sdk-s3 ENDPOINT BUCKET");
        std::process::exit(2);
    };
    let conf = aws_role_test_sdk_client::job_config(endpoint).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    println!("aws-sdk-s3/{}", aws_sdk_s3::meta::PKG_VERSION);
    let list = s3.list_objects_v2().bucket(bucket).send().await;
    let list = list.unwrap_or_else(|e| fail("ListObjectsV2", e));
    for o in list.contents() {
        println!("LIST: {}", o.key().unwrap_or("?"));
    }
    let get = s3.get_object().bucket(bucket).key("in.csv").send().await;
    let body = get
        .unwrap_or_else(|e| fail("GetObject", e))
        .body
        .collect()
        .await;
    let body = body.unwrap_or_else(|e| fail("reading the object", e));
    println!("READ: {}", String::from_utf8_lossy(&body.into_bytes()));
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("out.csv")
        .body(ByteStream::from_static(b"x,y\n3,4\n"))
        .send()
        .await;
    put.unwrap_or_else(|e| fail("PutObject", e));
    println!("WROTE");
}
