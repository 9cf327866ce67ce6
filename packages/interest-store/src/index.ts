export * from './catalog';
export * from './keys';
export * from './read';
export * from './scripts';
export * from './store';
export * from './errors';
export * from './tag-index';
export * from './privacy';
