export * from './evaluate';
export * from './rules';
