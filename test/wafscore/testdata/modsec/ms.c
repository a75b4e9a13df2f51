/* ms feeds requests to ModSecurity v3 (see run.sh): one request a line on
 * stdin, METHOD, target, Content-Type ("-": none) and body ("-": none; \n
 * for CRLF), tab separated. It prints the rules that logged (with their
 * matched data) and whether ModSecurity intervened. The rules file is
 * $MODSEC_CONF. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <modsecurity/intervention.h>

static void logcb(void *data, const void *msg) {
    const char *m = (const char *)msg;
    const char *id = strstr(m, "[id \"");
    const char *md = strstr(m, "[data \"");
    if (id) {
        char buf[16] = {0}; sscanf(id, "[id \"%15[^\"]", buf);
        if (atoi(buf) >= 949000) return;
        printf("   rule %s", buf);
        if (md) { char d[400] = {0}; sscanf(md, "[data \"%399[^\"]", d); printf(" data=%s", d); }
        printf("\n");
    }
}

int main(int argc, char **argv) {
    ModSecurity *ms = msc_init();
    msc_set_log_cb(ms, logcb);
    RulesSet *rules = msc_create_rules_set();
    const char *err = NULL;
    const char *conf = getenv("MODSEC_CONF");
    if (!conf) { fprintf(stderr, "MODSEC_CONF not set\n"); return 2; }
    if (msc_rules_add_file(rules, conf, &err) < 0) { fprintf(stderr, "rules: %s\n", err); return 2; }
    char line[70000];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        char *method = strtok(line, "\t"), *uri = strtok(NULL, "\t"), *ct = strtok(NULL, "\t"), *body = strtok(NULL, "\t");
        if (!method || !uri) continue;
        if (ct && strcmp(ct, "-") == 0) ct = NULL;
        char b[70000]; size_t n = 0;
        if (body && strcmp(body, "-") != 0) {
            for (char *p = body; *p; p++) {
                if (p[0] == '\\' && p[1] == 'n') { b[n++] = '\r'; b[n++] = '\n'; p++; } else b[n++] = *p;
            }
        }
        Transaction *t = msc_new_transaction(ms, rules, NULL);
        msc_process_connection(t, "127.0.0.1", 40000, "127.0.0.1", 80);
        msc_process_uri(t, uri, method, "1.1");
        msc_add_request_header(t, (const unsigned char *)"Host", (const unsigned char *)"localhost");
        msc_add_request_header(t, (const unsigned char *)"User-Agent", (const unsigned char *)"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36");
        msc_add_request_header(t, (const unsigned char *)"Accept", (const unsigned char *)"*/*");
        char cl[32]; snprintf(cl, sizeof cl, "%zu", n);
        if (n > 0) msc_add_request_header(t, (const unsigned char *)"Content-Length", (const unsigned char *)cl);
        if (ct) msc_add_request_header(t, (const unsigned char *)"Content-Type", (const unsigned char *)ct);
        printf("%s %s ct=%s\n", method, uri, ct ? ct : "");
        msc_process_request_headers(t);
        if (n > 0) msc_append_request_body(t, (const unsigned char *)b, n);
        msc_process_request_body(t);
        ModSecurityIntervention it; memset(&it, 0, sizeof it); it.status = 200;
        int d = msc_intervention(t, &it);
        printf("   => %s status %d\n", d ? "INTERVENTION" : "pass", it.status);
        if (it.log) free(it.log);
        if (it.url) free(it.url);
        msc_process_logging(t);
        msc_transaction_cleanup(t);
    }
    return 0;
}
