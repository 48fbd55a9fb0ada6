// What the server tells the page instead of the page copying it (crates/dashboard/src/contract.rs):
// the event catalog, the actor types and the API's filter parameters, read from the JSON data block in index.html.

const contract = JSON.parse(document.getElementById('contract').textContent);

/** The product's event catalog, grouped by resource, so types no event has used yet still list. */
export const CATALOG = contract.catalog;

/** The actor types (`user`, `root_key`, `system`), for the actor-type select. */
export const ACTOR_TYPES = contract.actor_types;

/** The API's filter parameters (list, counts and export take the same ones). */
export const API_FILTERS = contract.filters;

/** URL query parameters that are filters: the API's, and `range` (the page's time-range preset). */
export const FILTER_KEYS = [...API_FILTERS, 'range'];
