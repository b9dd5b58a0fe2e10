export * from './chain.js';
export * from './catalog.js';
export * from './evidence.js';
export * from './base.js';
export * from './report.js';
