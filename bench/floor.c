/*
 * The latency floor for bench/run.sh: the least any program can do to get a job's
 * credentials from STS. One process: connect to 127.0.0.1:PORT, send ONE AssumeRole
 * POST (Query API, HTTP/1.1), read the answer up to its Content-Length (as curl and the
 * SDK do: no waiting for the server to close the connection), exit 0 if it is HTTP 200
 * with an AccessKeyId in it.
 *
 * What it leaves out, on purpose (the prolog does all of these): SigV4 signing (the
 * Authorization header has the right shape but a dummy signature: moto routes on it and
 * does not check it), reading a config or a credentials file, user/role checks, XML
 * parsing, writing files, retries. Built by run.sh with `cc -O2`; no libraries but libc.
 *
 *   floor PORT ROLE_ARN SESSION_NAME [PATH]
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT ROLE_ARN SESSION_NAME [PATH]\n", argv[0]);
        return 2;
    }
    const char *path = argc > 4 ? argv[4] : "/";
    char body[1024], req[4096];
    int blen = snprintf(body, sizeof body,
                        "Action=AssumeRole&Version=2011-06-15&RoleArn=%s"
                        "&RoleSessionName=%s&DurationSeconds=3600",
                        argv[2], argv[3]);
    int rlen = snprintf(req, sizeof req,
                        "POST %s HTTP/1.1\r\n"
                        "Host: 127.0.0.1:%s\r\n"
                        "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
                        "X-Amz-Date: 20260101T000000Z\r\n"
                        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDNODE000000000000/"
                        "20260101/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, "
                        "Signature=0000000000000000000000000000000000000000000000000000000000000000\r\n"
                        "Content-Length: %d\r\n\r\n%s",
                        path, argv[1], blen, body);
    if (blen >= (int)sizeof body || rlen >= (int)sizeof req) return 2;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    for (int off = 0; off < rlen;) {
        ssize_t n = write(fd, req + off, (size_t)(rlen - off));
        if (n <= 0) { perror("write"); return 1; }
        off += (int)n;
    }
    /* Read until the headers and Content-Length bytes of body are in (or EOF). */
    static char resp[65536];
    size_t got = 0, want = 0;
    while (got < sizeof resp - 1) {
        ssize_t n = read(fd, resp + got, sizeof resp - 1 - got);
        if (n < 0) { perror("read"); return 1; }
        if (n == 0) break;
        got += (size_t)n;
        resp[got] = 0;
        if (!want) {
            char *end = strstr(resp, "\r\n\r\n"), *cl = strcasestr(resp, "\r\nContent-Length:");
            if (end && cl && cl < end) want = (size_t)(end + 4 - resp) + strtoul(cl + 17, NULL, 10);
        }
        if (want && got >= want) break;
    }
    resp[got] = 0;
    close(fd);
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 && strncmp(resp, "HTTP/1.0 200", 12) != 0) {
        fprintf(stderr, "floor: not HTTP 200: %.80s\n", resp);
        return 1;
    }
    if (!strstr(resp, "<AccessKeyId>")) {
        fprintf(stderr, "floor: no AccessKeyId in the answer\n");
        return 1;
    }
    return 0;
}
