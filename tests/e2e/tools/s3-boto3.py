"""The boto3 program of the tool table (tests/e2e/tools), run on the node and in each
container, given as `python3 -c "$(cat s3-boto3.py)" BUCKET S3_URL [LABEL...]`: lists,
reads in.csv and writes out.csv, printing LIST:/READ:/WROTE (tests/e2e/tools/in-ns.sh reads
them), after the boto3 version and the label on the first line."""
import sys, boto3
b, s3url = sys.argv[1:3]
print("boto3/" + boto3.__version__ + "".join(" " + a for a in sys.argv[3:]))
s3 = boto3.client("s3", endpoint_url=s3url)
for o in s3.list_objects_v2(Bucket=b).get("Contents", []): print("LIST:", o["Key"])
print("READ:", s3.get_object(Bucket=b, Key="in.csv")["Body"].read().decode())
s3.put_object(Bucket=b, Key="out.csv", Body=b"x,y\n3,4\n"); print("WROTE")
