// compare_data.mjs - the data compare.mjs stores and asks for, shared with
// search_ab.mjs so that an A/B of a search change runs compare's workload.

export const WORDS = ['coffee', 'tea', 'chess', 'rust', 'jazz', 'hiking', 'poetry', 'sailing', 'physics', 'baking',
  'cycling', 'opera', 'go', 'kites', 'pottery', 'maps'];

// The i-th bulk entity, named `${prefix}-${i}`: two observations, one of
// 97 groups and two of the 16 words.
export const benchEntity = (prefix, i) => ({
  name: `${prefix}-${i}`,
  entityType: 'bench',
  observations: [`observation about item ${i} in group ${i % 97}`, `likes ${WORDS[i % 16]} and ${WORDS[(i >> 4) % 16]}`],
});

// The k-th of the 10 entities search_nodes must find ("quokka").
export const needleEntity = (prefix, k) => ({
  name: `${prefix}-${k}`,
  entityType: 'bench',
  observations: [`the quokka number ${k} lives here`],
});

// A semantic or hybrid query like the stored observations; rnd(n) picks 0..n-1.
export const benchQuery = (rnd) => `item about group ${rnd(97)} who likes ${WORDS[rnd(16)]}`;
