/* ir.compile_syntax's two checks over the flat arrays, for the native lowering (gbnf_lower.c): no rule reaches
 * itself without consuming input through a reference that keeps a frame (left recursion), and every rule has a
 * way to finish. Whether they pass is all this says; a failure is explained by the Python path. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flat_builder.h"

typedef struct {
    Py_ssize_t n_rules, n_alts, n_elements; /* elements: not counting END */
    const uint8_t *kinds;
    const int32_t *values, *rule_alts, *alt_starts;
    int32_t *owner;     /* per alternative: its rule */
    int32_t *ref_start; /* per alternative: where its distinct references begin in refs (n_alts + 1) */
    int32_t *refs;
    uint8_t *only_refs; /* per alternative: nothing but references (an empty one too) */
} References;

static int32_t *new_ints(Py_ssize_t n)
{
    return malloc(((size_t)n + 1) * sizeof(int32_t));
}

static int take_references(References *R)
{
    R->n_elements = 0;
    R->owner = new_ints(R->n_alts);
    R->ref_start = new_ints(R->n_alts);
    R->only_refs = malloc((size_t)R->n_alts + 1);
    int32_t *stamp = new_ints(R->n_rules);
    for (Py_ssize_t a = 0; a < R->n_alts; a++) /* references never outnumber elements */
        for (Py_ssize_t e = R->alt_starts[a]; R->kinds[e] != K_END; e++)
            R->n_elements++;
    R->refs = new_ints(R->n_elements);
    if (!R->owner || !R->ref_start || !R->only_refs || !stamp || !R->refs) {
        free(stamp);
        return GIVE_UP;
    }
    memset(stamp, 0xFF, ((size_t)R->n_rules + 1) * sizeof(int32_t));
    Py_ssize_t at = 0;
    for (Py_ssize_t r = 0; r < R->n_rules; r++) {
        for (Py_ssize_t a = R->rule_alts[r]; a < R->rule_alts[r + 1]; a++) {
            int only = 1;
            R->owner[a] = (int32_t)r;
            R->ref_start[a] = (int32_t)at;
            for (Py_ssize_t e = R->alt_starts[a]; R->kinds[e] != K_END; e++) {
                if (R->kinds[e] != K_RULE) {
                    only = 0;
                } else if (stamp[R->values[e]] != a) {
                    stamp[R->values[e]] = (int32_t)a;
                    R->refs[at++] = R->values[e];
                }
            }
            R->only_refs[a] = (uint8_t)only;
        }
    }
    R->ref_start[R->n_alts] = (int32_t)at;
    free(stamp);
    return 0;
}

/* Per rule, whether one of its eligible alternatives (all when `eligible` is NULL) has every rule it references
 * marked too: the least fixpoint, over a worklist (ir._rules_with_a_finished_alternative). */
static uint8_t *finished(const References *R, const uint8_t *eligible, int mark_empty)
{
    int32_t *missing = new_ints(R->n_alts), *waiting_start = new_ints(R->n_rules + 1), *waiting = NULL;
    int32_t *ready = NULL;
    uint8_t *marked = calloc((size_t)R->n_rules + 1, 1);
    Py_ssize_t n_ready = 0, n_waiting = R->ref_start[R->n_alts];
    waiting = new_ints(n_waiting);
    ready = new_ints(n_waiting + R->n_alts + R->n_rules);
    if (!missing || !waiting_start || !waiting || !ready || !marked) {
        free(marked);
        marked = NULL;
        goto exit;
    }
    memset(waiting_start, 0, ((size_t)R->n_rules + 2) * sizeof(int32_t));
    for (Py_ssize_t a = 0; a < R->n_alts; a++) {
        missing[a] = R->ref_start[a + 1] - R->ref_start[a];
        if (eligible && !eligible[a])
            continue;
        if (missing[a] == 0)
            ready[n_ready++] = R->owner[a];
        for (int32_t i = R->ref_start[a]; i < R->ref_start[a + 1]; i++)
            waiting_start[R->refs[i] + 1]++;
    }
    for (Py_ssize_t r = 0; r < R->n_rules; r++)
        waiting_start[r + 1] += waiting_start[r];
    for (Py_ssize_t a = 0; a < R->n_alts; a++) { /* waiting_start[r] runs ahead while filling, then is restored */
        if (eligible && !eligible[a])
            continue;
        for (int32_t i = R->ref_start[a]; i < R->ref_start[a + 1]; i++)
            waiting[waiting_start[R->refs[i]]++] = (int32_t)a;
    }
    for (Py_ssize_t r = R->n_rules; r > 0; r--)
        waiting_start[r] = waiting_start[r - 1];
    waiting_start[0] = 0;
    if (mark_empty)
        for (Py_ssize_t r = 0; r < R->n_rules; r++)
            if (R->rule_alts[r] == R->rule_alts[r + 1])
                ready[n_ready++] = (int32_t)r;
    while (n_ready) {
        int32_t rule = ready[--n_ready];
        if (marked[rule])
            continue;
        marked[rule] = 1;
        for (int32_t i = waiting_start[rule]; i < waiting_start[rule + 1]; i++)
            if (--missing[waiting[i]] == 0)
                ready[n_ready++] = R->owner[waiting[i]];
    }
exit:
    free(missing);
    free(waiting_start);
    free(waiting);
    free(ready);
    return marked;
}

/* Component id per rule over the left edges (iterative Tarjan, as ir._strongly_connected_components). */
static int32_t *components(Py_ssize_t n, const int32_t *edge_start, const int32_t *target)
{
    int32_t *index = new_ints(n), *low = new_ints(n), *component = new_ints(n), *stack = new_ints(n);
    int32_t *work_node = new_ints(2 * n + 2), *work_child = new_ints(2 * n + 2);
    uint8_t *on_stack = calloc((size_t)n + 1, 1);
    int32_t counter = 0;
    Py_ssize_t depth = 0, n_work = 0;
    if (!index || !low || !component || !stack || !work_node || !work_child || !on_stack) {
        free(component);
        component = NULL;
        goto exit;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        index[i] = -1;
    for (int32_t root = 0; root < n; root++) {
        if (index[root] >= 0)
            continue;
        work_node[0] = root;
        work_child[0] = 0;
        n_work = 1;
        while (n_work) {
            int32_t node = work_node[--n_work], child = work_child[n_work];
            if (child == 0) {
                index[node] = low[node] = counter++;
                stack[depth++] = node;
                on_stack[node] = 1;
            }
            if (child < edge_start[node + 1] - edge_start[node]) {
                int32_t next = target[edge_start[node] + child];
                work_node[n_work] = node;
                work_child[n_work++] = child + 1;
                if (index[next] < 0) {
                    work_node[n_work] = next;
                    work_child[n_work++] = 0;
                } else if (on_stack[next] && index[next] < low[node]) {
                    low[node] = index[next];
                }
                continue;
            }
            if (low[node] == index[node]) {
                int32_t member;
                do {
                    member = stack[--depth];
                    on_stack[member] = 0;
                    component[member] = node;
                } while (member != node);
            }
            if (n_work) {
                int32_t parent = work_node[n_work - 1];
                if (low[node] < low[parent])
                    low[parent] = low[node];
            }
        }
    }
exit:
    free(index);
    free(low);
    free(stack);
    free(work_node);
    free(work_child);
    free(on_stack);
    return component;
}

static int no_left_recursion(const References *R)
{
    uint8_t *nullable = finished(R, R->only_refs, 0);
    int32_t *edge_start = new_ints(R->n_rules + 1), *target = new_ints(R->n_elements); /* an edge per reference */
    uint8_t *tail = malloc((size_t)R->n_elements + 1);
    int32_t *component = NULL;
    int passed = 0;
    if (!nullable || !edge_start || !target || !tail)
        goto exit;
    Py_ssize_t n_edges = 0;
    for (Py_ssize_t r = 0; r < R->n_rules; r++) {
        edge_start[r] = (int32_t)n_edges;
        for (Py_ssize_t a = R->rule_alts[r]; a < R->rule_alts[r + 1]; a++) {
            Py_ssize_t last = R->alt_starts[a];
            while (R->kinds[last] != K_END)
                last++;
            for (Py_ssize_t e = R->alt_starts[a]; R->kinds[e] == K_RULE; e++) {
                target[n_edges] = R->values[e];
                tail[n_edges++] = (uint8_t)(e == last - 1);
                if (!nullable[R->values[e]])
                    break;
            }
        }
    }
    edge_start[R->n_rules] = (int32_t)n_edges;
    component = components(R->n_rules, edge_start, target);
    if (component == NULL)
        goto exit;
    passed = 1;
    for (Py_ssize_t r = 0; r < R->n_rules && passed; r++)
        for (int32_t i = edge_start[r]; i < edge_start[r + 1] && passed; i++)
            passed = tail[i] || component[r] != component[target[i]];
exit:
    free(nullable);
    free(edge_start);
    free(target);
    free(tail);
    free(component);
    return passed;
}

int flat_checks_pass(const uint8_t *kinds, const int32_t *values, const int32_t *rule_alts, const int32_t *alt_starts,
                     Py_ssize_t n_rules)
{
    References R = {n_rules, rule_alts[n_rules], 0, kinds, values, rule_alts, alt_starts, NULL, NULL, NULL, NULL};
    int passed = 0;
    if (take_references(&R) == 0 && no_left_recursion(&R)) {
        uint8_t *productive = finished(&R, NULL, 1);
        passed = productive != NULL;
        for (Py_ssize_t r = 0; r < n_rules && passed; r++)
            passed = productive[r];
        free(productive);
    }
    free(R.owner);
    free(R.ref_start);
    free(R.refs);
    free(R.only_refs);
    return passed;
}
