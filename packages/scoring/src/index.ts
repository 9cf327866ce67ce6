export * from './decay';
export * from './tags';
export * from './weights';
