#!/usr/bin/env python3
"""Buckets and objects in a test's own moto S3 (test fixture), straight to moto with its
dummy keys, never through the request log:

  s3-fixture.py buckets URL NAME...   a fresh bucket t-NAME per NAME (emptied if it was
                                      there), holding in.csv ("alpha,beta\\n1,2\\n")
  s3-fixture.py get URL BUCKET KEY    the object's text, its lines joined by "|";
                                      "none: <error>" when there is none
"""
import sys

import boto3


def client(url):
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )


def buckets(url, names):
    s3 = client(url)
    for name in names:
        b = "t-" + name
        try:
            for o in s3.list_objects_v2(Bucket=b).get("Contents", []):
                s3.delete_object(Bucket=b, Key=o["Key"])
        except s3.exceptions.NoSuchBucket:
            s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="in.csv", Body=b"alpha,beta\n1,2\n")


def get(url, bucket, key):
    try:
        body = client(url).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        print(body.strip().replace("\n", "|"))
    except Exception as e:  # what a suite prints and compares, whatever went wrong
        print("none:", type(e).__name__)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "buckets":
        buckets(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "get":
        get(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
