/* The token mask of one grammar state: a depth-first walk over the vocabulary trie laid out in preorder, so
 * a node's subtree is the contiguous range [node, subtree_end[node]) and a dead prefix skips every token under
 * it in one jump. Each node's parse state is its parent's stepped by the node's byte through the automaton's
 * transition table; a transition the table does not know yet (-1) is reported back, with its subtree left
 * unwalked, so Python can compute it and walk just those subtrees again. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "native.h"

#define TABLE_UNKNOWN (-1)
#define TABLE_DEAD 0

typedef struct {
    const int32_t *table;
    Py_ssize_t n_states;
    const uint8_t *node_byte;
    const int32_t *node_depth;
    const int32_t *subtree_end;
    const int32_t *token_start;
    const int32_t *sorted_ids;
    Py_ssize_t n_nodes;
    Py_ssize_t n_tokens;
    uint8_t *out_mask;
    Py_ssize_t n_tokens_out;
    int32_t *pending;
    Py_ssize_t pending_capacity;
    int32_t *depth_states;
    Py_ssize_t max_depth;
    const int32_t *visit;
    Py_ssize_t n_visit;
    int32_t *node_states;
} TrieWalk;

typedef enum { WALK_OK, WALK_BAD_TRIE, WALK_BAD_STATE, WALK_BAD_TOKEN, WALK_PENDING_FULL } WalkStatus;

static int
buffer_of(Py_buffer *view, PyObject *object, int flags, Py_ssize_t itemsize, const char *name)
{
    if (PyObject_GetBuffer(object, view, flags | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->itemsize != itemsize || view->len % itemsize != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous buffer of %zd-byte items, got %zd-byte items",
                     name, itemsize, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Allows the tokens that end at `node` (consecutive in sorted order: token_start[node] onwards), with plain
 * byte stores into the caller's bool mask, so a fresh mask needs no unpacking afterwards. */
static WalkStatus
mark_tokens(const TrieWalk *walk, Py_ssize_t node)
{
    int32_t low = walk->token_start[node], high = walk->token_start[node + 1];
    if (low < 0 || high < low || high > walk->n_tokens)
        return WALK_BAD_TRIE;
    for (int32_t k = low; k < high; k++) {
        int32_t token = walk->sorted_ids[k];
        if (token < 0 || token >= walk->n_tokens_out)
            return WALK_BAD_TOKEN;
        walk->out_mask[token] = 1;
    }
    return WALK_OK;
}

/* The first position of the visit list holding a node >= `node` (the list is sorted). */
static Py_ssize_t
visit_position(const TrieWalk *walk, Py_ssize_t low, Py_ssize_t node)
{
    Py_ssize_t high = walk->n_visit;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (walk->visit[middle] < node)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* Walks the subtree of `root` given its parent's state (for the trie's root node 0: the node's own state).
 * With a visit list, only the listed nodes are stepped: it holds every ancestor of each node it holds. */
static WalkStatus
walk_subtree(TrieWalk *walk, Py_ssize_t root, int32_t parent_state, Py_ssize_t *n_pending)
{
    Py_ssize_t first, end;
    if (parent_state < 0 || parent_state >= walk->n_states)
        return WALK_BAD_STATE;
    if (root == 0) {
        walk->depth_states[0] = parent_state;
        first = 1;
        end = walk->n_nodes;
    }
    else {
        int32_t depth = walk->node_depth[root];
        if (depth < 1 || depth > walk->max_depth)
            return WALK_BAD_TRIE;
        walk->depth_states[depth - 1] = parent_state;
        first = root;
        end = walk->subtree_end[root];
    }
    Py_ssize_t position = walk->visit ? visit_position(walk, 0, first) : first;
    Py_ssize_t stop = walk->visit ? visit_position(walk, position, end) : end;
    while (position < stop) {
        Py_ssize_t node = walk->visit ? walk->visit[position] : position;
        if (node < 1 || node >= walk->n_nodes)
            return WALK_BAD_TRIE;
        int32_t depth = walk->node_depth[node];
        if (depth < 1 || depth > walk->max_depth)
            return WALK_BAD_TRIE;
        int32_t state = walk->depth_states[depth - 1];
        int32_t next = walk->table[(Py_ssize_t)state * 256 + walk->node_byte[node]];
        if (next <= TABLE_DEAD) {
            if (next != TABLE_DEAD) {
                if (next != TABLE_UNKNOWN)
                    return WALK_BAD_STATE;
                if (*n_pending >= walk->pending_capacity)
                    return WALK_PENDING_FULL;
                walk->pending[2 * *n_pending] = (int32_t)node;
                walk->pending[2 * *n_pending + 1] = state;
                (*n_pending)++;
            }
            Py_ssize_t skip_to = walk->subtree_end[node];
            if (skip_to <= node || skip_to > walk->n_nodes)
                return WALK_BAD_TRIE;
            position = walk->visit ? visit_position(walk, position + 1, skip_to) : skip_to;
            continue;
        }
        if (next >= walk->n_states)
            return WALK_BAD_STATE;
        walk->depth_states[depth] = next;
        if (walk->node_states)
            walk->node_states[node] = next;
        WalkStatus status = mark_tokens(walk, node);
        if (status != WALK_OK)
            return status;
        position++;
    }
    return WALK_OK;
}

static WalkStatus
walk_entries(TrieWalk *walk, const int32_t *entries, Py_ssize_t n_entries, Py_ssize_t *n_pending)
{
    for (Py_ssize_t i = 0; i < n_entries; i++) {
        int32_t root = entries[2 * i];
        if (root < 0 || root >= walk->n_nodes)
            return WALK_BAD_TRIE;
        WalkStatus status = walk_subtree(walk, root, entries[2 * i + 1], n_pending);
        if (status != WALK_OK)
            return status;
    }
    return WALK_OK;
}

static void
raise_walk_error(WalkStatus status)
{
    switch (status) {
    case WALK_BAD_TRIE:
        PyErr_SetString(PyExc_ValueError,
                        "trie arrays are inconsistent (depth, subtree end or token range out of bounds)");
        break;
    case WALK_BAD_STATE:
        PyErr_SetString(PyExc_ValueError, "a state is outside the transition table (pass the current table)");
        break;
    case WALK_BAD_TOKEN:
        PyErr_SetString(PyExc_ValueError, "a token id is outside the output mask");
        break;
    case WALK_PENDING_FULL:
        PyErr_SetString(PyExc_OverflowError, "pending buffer is full; give it one row per trie node");
        break;
    default:
        break;
    }
}

PyObject *
edge_trie_walk(PyObject *self, PyObject *args)
{
    PyObject *objects[11];
    Py_buffer table = {0}, node_byte = {0}, node_depth = {0}, subtree_end = {0}, token_start = {0};
    Py_buffer sorted_ids = {0}, entries = {0}, out_mask = {0}, pending = {0}, visit = {0}, node_states = {0};
    Py_ssize_t max_depth;
    PyObject *result = NULL;
    TrieWalk walk;
    int32_t *depth_states = NULL;

    objects[9] = objects[10] = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOOOnOOO|OO:trie_walk", &objects[0], &objects[1], &objects[2], &objects[3],
                          &objects[4], &objects[5], &max_depth, &objects[6], &objects[7], &objects[8],
                          &objects[9], &objects[10]))
        return NULL;
    if (buffer_of(&table, objects[0], PyBUF_SIMPLE, 4, "table") < 0 ||
        buffer_of(&node_byte, objects[1], PyBUF_SIMPLE, 1, "node_byte") < 0 ||
        buffer_of(&node_depth, objects[2], PyBUF_SIMPLE, 4, "node_depth") < 0 ||
        buffer_of(&subtree_end, objects[3], PyBUF_SIMPLE, 4, "subtree_end") < 0 ||
        buffer_of(&token_start, objects[4], PyBUF_SIMPLE, 4, "token_start") < 0 ||
        buffer_of(&sorted_ids, objects[5], PyBUF_SIMPLE, 4, "sorted_ids") < 0 ||
        buffer_of(&entries, objects[6], PyBUF_SIMPLE, 4, "entries") < 0 ||
        buffer_of(&out_mask, objects[7], PyBUF_WRITABLE, 1, "out_mask") < 0 ||
        buffer_of(&pending, objects[8], PyBUF_WRITABLE, 4, "pending") < 0 ||
        (objects[9] != Py_None && buffer_of(&visit, objects[9], PyBUF_SIMPLE, 4, "visit") < 0) ||
        (objects[10] != Py_None && buffer_of(&node_states, objects[10], PyBUF_WRITABLE, 4, "node_states") < 0))
        goto exit;
    Py_ssize_t n_nodes = node_byte.len;
    if (table.len % (256 * 4) != 0) {
        PyErr_SetString(PyExc_ValueError, "table must have 256 int32 columns");
        goto exit;
    }
    if (node_depth.len / 4 != n_nodes || subtree_end.len / 4 != n_nodes || token_start.len / 4 != n_nodes + 1) {
        PyErr_Format(PyExc_ValueError,
                     "trie arrays disagree: %zd nodes but %zd depths, %zd subtree ends, %zd token starts "
                     "(want one more token start than nodes)",
                     n_nodes, node_depth.len / 4, subtree_end.len / 4, token_start.len / 4);
        goto exit;
    }
    if (node_states.obj != NULL && node_states.len / 4 != n_nodes) {
        PyErr_Format(PyExc_ValueError, "node_states has %zd entries for %zd trie nodes", node_states.len / 4,
                     n_nodes);
        goto exit;
    }
    if (n_nodes < 1 || max_depth < 1) {
        PyErr_SetString(PyExc_ValueError, "the trie needs a root node and max_depth >= 1");
        goto exit;
    }
    if (entries.len % 8 != 0 || pending.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "entries and pending must be (n, 2) int32 arrays of (node, state)");
        goto exit;
    }
    depth_states = PyMem_Malloc((size_t)(max_depth + 1) * sizeof(int32_t));
    if (depth_states == NULL) {
        PyErr_NoMemory();
        goto exit;
    }
    walk = (TrieWalk){
        .table = table.buf, .n_states = table.len / (256 * 4), .node_byte = node_byte.buf,
        .node_depth = node_depth.buf, .subtree_end = subtree_end.buf, .token_start = token_start.buf,
        .sorted_ids = sorted_ids.buf, .n_nodes = n_nodes, .n_tokens = sorted_ids.len / 4,
        .out_mask = out_mask.buf, .n_tokens_out = out_mask.len, .pending = pending.buf,
        .pending_capacity = pending.len / 8, .depth_states = depth_states, .max_depth = max_depth,
        .visit = visit.obj != NULL ? visit.buf : NULL, .n_visit = visit.len / 4,
        .node_states = node_states.obj != NULL ? node_states.buf : NULL,
    };
    Py_ssize_t n_pending = 0;
    WalkStatus status;
    Py_BEGIN_ALLOW_THREADS
    status = walk_entries(&walk, entries.buf, entries.len / 8, &n_pending);
    Py_END_ALLOW_THREADS
    if (status != WALK_OK) {
        raise_walk_error(status);
        goto exit;
    }
    result = PyLong_FromSsize_t(n_pending);
exit:
    PyMem_Free(depth_states);
    PyBuffer_Release(&table);
    PyBuffer_Release(&node_byte);
    PyBuffer_Release(&node_depth);
    PyBuffer_Release(&subtree_end);
    PyBuffer_Release(&token_start);
    PyBuffer_Release(&sorted_ids);
    PyBuffer_Release(&entries);
    PyBuffer_Release(&out_mask);
    PyBuffer_Release(&pending);
    PyBuffer_Release(&visit);
    PyBuffer_Release(&node_states);
    return result;
}
