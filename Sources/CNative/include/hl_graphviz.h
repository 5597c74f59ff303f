#ifndef HEADLIGHT_HL_GRAPHVIZ_H
#define HEADLIGHT_HL_GRAPHVIZ_H
/// Graphviz library version string (static storage).
const char *hl_gv_version(void);
#endif
