#include "hl_graphviz.h"
#include <graphviz/gvc.h>

const char *hl_gv_version(void) {
    GVC_t *gvc = gvContext();
    static char version[64];
    const char *v = gvcVersion(gvc);
    size_t i = 0;
    for (; v && v[i] && i < sizeof version - 1; i++) version[i] = v[i];
    version[i] = 0;
    gvFreeContext(gvc);
    return version;
}
