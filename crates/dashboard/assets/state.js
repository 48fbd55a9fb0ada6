// The page's state: one object, shared by every module.

export const state = {
  token: null,
  workspace: null, // {workspace_id, plan, retention_days}
  filters: {}, // from the URL, see FILTER_KEYS (contract.js); `event` is an array
  openId: null, // event id shown in the detail panel
  rows: [],
  cursor: null,
  done: false,
  loading: false,
  error: null,
  generation: 0, // bumps on every new view: late answers for an old view are dropped
  params: null, // the API parameters of the current view (resolved time range)
  counts: null, // Map event type -> count (facet counts: every filter but `event`)
  total: null, // matching events in the current view
  selected: -1, // index of the focused row
};
