export * from './explain';
export * from './plan';
export * from './rule';
export * from './similar';
export * from './threshold';
export * from './watch';
