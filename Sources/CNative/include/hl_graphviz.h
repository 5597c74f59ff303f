#ifndef HEADLIGHT_HL_GRAPHVIZ_H
#define HEADLIGHT_HL_GRAPHVIZ_H
// In-process Graphviz rendering (libgvc + libcgraph, "dot" layout, SVG output).
//
// Ownership: on success *out points to a buffer owned by Graphviz; release it
// with hl_gv_free_svg() (never free()). The error buffer is the caller's.
// Thread safety: Graphviz keeps global parser and error state, so every call
// is serialised on one internal mutex; calling from several threads is safe
// but does not run in parallel.

/// Status codes returned by hl_gv_render_svg.
enum {
    HL_GV_OK = 0,
    HL_GV_EINVAL = 1,   ///< NULL argument
    HL_GV_ECONTEXT = 2, ///< gvContext() failed (plugins missing?)
    HL_GV_EPARSE = 3,   ///< agmemread() could not parse the DOT text
    HL_GV_ELAYOUT = 4,  ///< gvLayout(..., "dot") failed
    HL_GV_ERENDER = 5   ///< gvRenderData(..., "svg") failed
};

/// Graphviz library version string (static storage).
const char *hl_gv_version(void);

/// Lays out `dot` (a NUL-terminated DOT graph) with the "dot" engine and renders SVG.
/// On success returns HL_GV_OK, sets *out (not NUL-terminated in general; use *len)
/// and *len. Every message Graphviz emits during the call (errors and warnings,
/// "Error: ..." / "Warning: ...") is captured into `err` (NUL-terminated,
/// truncated to errlen - 1 bytes) instead of being printed to stderr; on
/// success `err` may still hold warnings. On failure returns one of HL_GV_E*,
/// with *out = NULL and *len = 0.
int hl_gv_render_svg(const char *dot, char **out, unsigned *len, char *err, int errlen);

/// Frees a buffer returned through hl_gv_render_svg's `out` (NULL is allowed).
void hl_gv_free_svg(char *data);

#endif
