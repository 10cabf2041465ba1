"""The polars program of the tool table (tests/e2e/tools), run on the node and in each
container, given as `python3 -c "$(cat s3-polars.py)" BUCKET S3_URL PROVIDER [LABEL...]`:
PROVIDER "auto" is polars' default credential provider (boto3's chain when boto3 is
installed), "none" its own object_store chain. Prints LIST:/READ:/WROTE like s3-boto3.py."""
import sys, polars as pl
b, s3url, provider = sys.argv[1:4]
print("polars/" + pl.__version__ + "".join(" " + a for a in sys.argv[4:]))
kw = {"storage_options": {"aws_endpoint_url": s3url, "aws_allow_http": "true"}}
if provider == "none": kw["credential_provider"] = None
print("LIST:", pl.scan_csv("s3://%s/*.csv" % b, **kw).collect().height, "rows in in.csv")
print("READ:", pl.read_csv("s3://%s/in.csv" % b, **kw).write_csv())
pl.DataFrame({"x": [3], "y": [4]}).write_csv("s3://%s/out.csv" % b, **kw); print("WROTE")
