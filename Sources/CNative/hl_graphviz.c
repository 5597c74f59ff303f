// In-process Graphviz rendering for Headlight reports. See hl_graphviz.h.
#include "hl_graphviz.h"
#include <graphviz/gvc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// Graphviz's cgraph parser and its error hooks are process-global: one lock guards them.
static pthread_mutex_t hl_gv_lock = PTHREAD_MUTEX_INITIALIZER;

// Where the current call collects messages (valid only while hl_gv_lock is held).
static char *hl_gv_err;
static size_t hl_gv_errcap;   // bytes available including the NUL
static size_t hl_gv_errused;  // bytes written, excluding the NUL

// agusererrf hook: Graphviz calls it with pieces ("Error", ": ", message) of each
// message; we append them all, truncating silently when the buffer is full.
static int hl_gv_collect(char *msg) {
    if (!msg || !hl_gv_err || hl_gv_errcap == 0) return 0;
    size_t n = strlen(msg);
    size_t room = hl_gv_errcap - 1 - hl_gv_errused;
    if (n > room) n = room;
    memcpy(hl_gv_err + hl_gv_errused, msg, n);
    hl_gv_errused += n;
    hl_gv_err[hl_gv_errused] = 0;
    return 0;
}

const char *hl_gv_version(void) {
    static char version[64];
    pthread_mutex_lock(&hl_gv_lock);
    GVC_t *gvc = gvContext();
    const char *v = gvc ? gvcVersion(gvc) : NULL;
    size_t i = 0;
    for (; v && v[i] && i < sizeof version - 1; i++) version[i] = v[i];
    version[i] = 0;
    if (gvc) gvFreeContext(gvc);
    pthread_mutex_unlock(&hl_gv_lock);
    return version;
}

int hl_gv_render_svg(const char *dot, char **out, unsigned *len, char *err, int errlen) {
    if (out) *out = NULL;
    if (len) *len = 0;
    if (err && errlen > 0) err[0] = 0;
    if (!dot || !out || !len) {
        if (err && errlen > 0) snprintf(err, (size_t)errlen, "hl_gv_render_svg: NULL argument");
        return HL_GV_EINVAL;
    }

    pthread_mutex_lock(&hl_gv_lock);
    hl_gv_err = (err && errlen > 0) ? err : NULL;
    hl_gv_errcap = (err && errlen > 0) ? (size_t)errlen : 0;
    hl_gv_errused = 0;
    agusererrf prev_hook = agseterrf(hl_gv_collect);
    agerrlevel_t prev_level = agseterr(AGWARN);  // route warnings to the hook too
    agreseterrors();

    int rc = HL_GV_OK;
    // One context for the process, never freed: Graphviz 2.43's pango plugin keeps font data
    // across contexts and reads it after gvFreeContext (valgrind: invalid reads in
    // textspan_size on the second context).
    static GVC_t *gvc = NULL;
    if (!gvc) gvc = gvContext();
    if (!gvc) {
        rc = HL_GV_ECONTEXT;
    } else {
        Agraph_t *g = agmemread(dot);
        if (!g) {
            rc = HL_GV_EPARSE;
        } else {
            if (gvLayout(gvc, g, "dot") != 0) {
                rc = HL_GV_ELAYOUT;
            } else {
                char *data = NULL;
                unsigned int n = 0;
                if (gvRenderData(gvc, g, "svg", &data, &n) != 0 || !data) {
                    rc = HL_GV_ERENDER;
                    if (data) gvFreeRenderData(data);
                } else {
                    *out = data;
                    *len = n;
                }
            }
            gvFreeLayout(gvc, g);  // safe after a failed layout too
            agclose(g);
        }
    }

    agseterr(prev_level);
    agseterrf(prev_hook);
    hl_gv_err = NULL;
    hl_gv_errcap = 0;
    pthread_mutex_unlock(&hl_gv_lock);

    if (rc != HL_GV_OK && err && errlen > 0 && err[0] == 0) {
        static const char *what[] = {"", "invalid argument", "could not create Graphviz context",
                                     "could not parse DOT", "layout failed", "SVG rendering failed"};
        snprintf(err, (size_t)errlen, "Graphviz: %s", what[rc]);
    }
    return rc;
}

void hl_gv_free_svg(char *data) {
    if (data) gvFreeRenderData(data);
}
